// torch already uses both cores: tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
