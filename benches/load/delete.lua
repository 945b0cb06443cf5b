-- wrk: send DELETE instead of GET (the deny path: the caller's role does not grant cluster.delete).
wrk.method = "DELETE"
