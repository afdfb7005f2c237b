"""The cold-start floors: the same query as ``get_task`` with less and less of the stack."""
