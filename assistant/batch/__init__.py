"""Batch jobs: one instruction (classify, extract, summarise) run over every document of a
collection, with the passages behind every cell. models.py: the tables; schema.py: the JSON
schema each job asks vLLM to follow; jobs.py: define, start, pause, resume, cancel, read
progress, compare runs; work.py: what a worker does with one run; tasks.py: the Celery task."""
