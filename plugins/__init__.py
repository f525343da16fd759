"""First-party plugins, registered through the `curator` entry-point group like anyone else's."""
