"""What a user does to one subject, written once: the CLI, the napari widgets, cohort runs
and the demo all call these functions (see ARCHITECTURE.md: entry points -> workflows ->
services -> core). Results carry their notes; warnings are not used to pass data."""
