"""vam: video asset management as an Apache Airflow 3 pipeline.

The core library never imports Airflow; the DAGs in ``dags/`` and the operators in ``plugins/``
are thin wiring over it.
"""

from __future__ import annotations

__version__ = "0.1.0"
