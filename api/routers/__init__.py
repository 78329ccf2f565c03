"""One router per resource: addresses, pools, model; health; the pages."""
