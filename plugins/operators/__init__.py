"""Airflow glue over vam: build vam's runtime from Airflow connections and run pipeline steps."""
