"""Sources: one adapter per raw dataset layout -> scene graphs; shared raw-file readers; demo/ synthesis.
May import schemas only."""
