"""The `hwnas` command, the pipelines behind the Makefile, and the reports."""
