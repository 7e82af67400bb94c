"""Development support (demo, sandboxes, local S3 server, Airflow client, load generator); the bento never ships it."""
