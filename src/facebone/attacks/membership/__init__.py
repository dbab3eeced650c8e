"""Membership inference: was this pair (or this person's photos) in the predictor's training set?

One module per attack, each registered by name: black_box.py ("blackbox-gb/rf/nn", ART's
learned attack), rule_based.py ("rule-based"), lira.py ("lira", offline LiRA), lira_online.py
("lira-online"), label_only.py ("label-only"). base.py holds shadows and splits; runner.py
evaluates several attacks at pair and identity level; metrics.py and plot.py score and draw ROCs.
"""
