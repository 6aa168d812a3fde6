"""The web app: customers' pages, QR codes and the auditor's API, over the index."""
