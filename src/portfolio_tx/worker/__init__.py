"""The worker: the cycle assembler, the mark table and the transactional loop."""
