"""The enrolment gallery: subjects with opaque ids, their protected templates in a store, 1:1
verification against a subject and 1:N identification, and erasure that is verified.

    gallery = Gallery.create("people.sqlite", system, model_dir)   # or postgresql://...
    subject = gallery.enroll([photo1, photo2])        # an opaque id; names are the caller's
    gallery.identify(probe).subject                   # that id, or None below the threshold
    gallery.delete(subject)

Layout: `records.py` (typed records), `store.py` (the storage contract) with `sqlite_store.py` and
`postgres_store.py`, `index.py` (exact and approximate search over plain templates),
`encrypted.py` (CKKS-packed templates), `gallery.py` (the facade), `erasure.py` (retraining
without a person, and the membership check that the deletion held).
"""
