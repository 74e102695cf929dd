"""The dashboard at ``P/ui``: pages over the store, live from the event feed.

``routes`` serves the pages, their JSON reads and actions and the coalesced streams;
``session`` turns an API key into a signed session cookie and guards actions against
cross-site requests; ``static/`` holds the page shell, its script and style, shipped in
the wheel (nothing is built at install time and nothing loads from elsewhere).
"""
