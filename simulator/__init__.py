"""A fleet of simulated OCPP 1.6 / 2.0.1 / 2.1 chargers, its load scenarios and the benchmark."""
