// torch already uses both cores: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
