"""Units of work: one repository end to end, discovering an owner's repositories, incremental
change detection, and the in-process runner. Built on github/, transform/ and store/; knows
nothing of Airflow.
"""
