"""Who may use the app and what it may touch: the user list, the path roots pages accept."""
