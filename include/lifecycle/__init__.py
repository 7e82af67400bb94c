"""Fraud-model lifecycle: the library behind the Airflow DAGs in ``dags/``."""
