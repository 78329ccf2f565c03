# Sourced by scripts: Airflow configured for this project on a throw-away home, UTC.
_data_dir=$(realpath -m "${POOL_CLASSIFIER_DATA_DIR:-data}")
export AIRFLOW_HOME=${AIRFLOW_HOME:-$_data_dir/airflow_home}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$PWD/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DEFAULT_TIMEZONE=utc
export PYTHONPATH=$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}
export TZ=UTC
