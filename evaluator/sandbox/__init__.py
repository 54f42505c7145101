"""The sandbox: a worker process per stage, jailed by the kernel, speaking a bound protocol."""
