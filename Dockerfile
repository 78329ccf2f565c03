# The image of docker-compose.yaml, built the way the Airflow docs say to extend the official
# image (https://airflow.apache.org/docs/docker-stack/build.html): the official image of the
# pinned version (requirements.txt pins apache-airflow, for Python 3.11), plus Java for
# Spark's local mode, plus the project's pinned requirements.
FROM apache/airflow:3.1.8-python3.11

USER root
# JAVA_HOME through a link that does not name the CPU architecture (amd64, arm64).
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && apt-get autoremove -yqq --purge \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-home
ENV JAVA_HOME=/usr/lib/jvm/java-home

USER airflow
COPY requirements.txt /tmp/requirements.txt
# Naming apache-airflow at the image's version makes pip refuse a requirements file that
# would move it, instead of silently up- or downgrading Airflow inside its own image.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt
