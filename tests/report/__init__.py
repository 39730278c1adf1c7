"""Tests of the report stage (afdsizer.report and `afdsizer report`)."""
