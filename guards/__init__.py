"""The guards every room shares: one for the network (every outbound connection), one for the files SQLite opens."""
