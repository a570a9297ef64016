"""Pipeline steps, one per file (verb_noun.py); the interface is in `steps.base`.

`batchimage.steps.pipeline` is the one place that decides which steps a spec needs and in which
order; a step module only describes its own step.
"""
