"""sbkube: deploy Helm charts and Kubernetes YAML from one config.yaml, and remember
every deployment."""

__version__ = "0.1.0"
