"""Worker logs: what each worker writes to stdout and stderr, tagged with the jobs it was
running, shipped to the gateway and kept in the store (one place for every gateway).

    lines.py     the records and limits (pure)
    markers.py   the in-stream job markers and the tagger that reads them (pure)
    shipper.py   LogShipper (a pipe -> batches -> a sink) and HttpLogSink
"""
