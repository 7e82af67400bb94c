"""Use cases: each subpackage declares one model's domain (``lifecycle.contract.UseCase``)."""
