"""Platform plumbing (environment, services, process supervision, executor preload); the bento never ships it."""
