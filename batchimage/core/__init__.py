"""Pure building blocks shared by the tool and the sandbox (published formats and rules);
this package imports nothing else of batchimage."""
