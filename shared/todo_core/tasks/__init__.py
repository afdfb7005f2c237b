"""Tasks: the app's basic REST resource."""
