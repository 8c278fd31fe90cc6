"""Units of work: one repository end to end, discovering an owner's repositories, incremental
change detection, the daily metrics row, and the in-process runner. Built on github/,
transform/ and store/; holds no SQL of its own (store/ does), and knows nothing of Airflow.
"""
