# vam on the official Airflow image: Debian's ffmpeg (ffprobe), the pinned requirements, the project.
# Everything is installed at build time; nothing is installed when a container starts.
#
#   docker build -t vam:latest .        (docker-compose.yaml builds it as AIRFLOW_IMAGE_NAME)
#
# The versions here match requirements.txt (apache-airflow==3.3.2) and Python 3.11.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

ARG AIRFLOW_VERSION=3.3.2
USER root
# ffprobe (and an ffmpeg without libvmaf; vam runs the ffmpeg 9 from the imageio-ffmpeg wheel, which
# has libvmaf, libx264, libx265 and libsvtav1)
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# The CPU build of torch first (the PyPI wheel of the same version pulls the CUDA libraries), then the
# pinned requirements with apache-airflow pinned to the image's own version.
COPY --chown=airflow:root requirements.txt /opt/vam/requirements.txt
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/vam/requirements.txt

# The project itself (editable: dags/, plugins/, include/ and sql/ stay beside the package).
COPY --chown=airflow:root . /opt/vam
RUN pip install --no-cache-dir --no-deps -e /opt/vam

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/vam/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/vam/plugins \
    PYTHONPATH=/opt/vam/plugins \
    VAM_HOME=/opt/airflow/vam
WORKDIR /opt/airflow
