"""Membership inference: was this pair (or this person's photos) in the predictor's training set?

One module per attack, each registered by name: black_box.py ("blackbox-gb/rf/nn", ART's
learned attack), rule_based.py ("rule-based"), lira.py ("lira", offline LiRA), lira_online.py
("lira-online"), rmia.py ("rmia"), label_only.py ("label-only"). base.py holds shadows and
splits; signals.py the signal table (candidates x shadows, computed once per target) that
the score-based attacks are functions of; runner.py evaluates several attacks at pair and
identity level; metrics.py and plot.py score and draw ROCs.
"""
