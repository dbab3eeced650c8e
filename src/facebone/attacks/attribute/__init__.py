"""Attribute inference: a private trait (gender) read from stolen templates (template.py) or
through the service's answers (blackbox.py); base.py scores them against the prior."""
