"""The control plane: a fixed Connexion FlaskApp described by `schemas/admin.yaml`."""
