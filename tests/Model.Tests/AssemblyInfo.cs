// Tests run one at a time: torch already uses both cores, and the largest variants need ~12 GB.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
