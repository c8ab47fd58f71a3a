"""``core.for-each``: iterations inline (``for_each``, ``iterate``), big loops in batch child runs (``batches``,
``workflow``: ``FlowLoopWorkflow``), and the items a rerun takes over (``reuse``). The loop helpers reach the run
only through ``engine._protocols.LoopHost``."""
