"""Demo and operator tooling (synthetic chain, run summary): not deployed with the pipeline."""
