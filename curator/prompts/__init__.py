"""Training prompts: writing them with a prompt-writer plugin, checking them, curators' edits."""
