"""The `hwnas` command (commands/), the engine behind it (engine/), the boards and studies (experiments/) and their reports (reports/)."""
