"""Access control: purposes of use, the Casbin-backed policy, record visibility and field masks."""
