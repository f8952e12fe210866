"""The zmongo demo site: a small Zope site whose content lives in MongoDB.

``zmongo-demo`` (or ``python -m zmongo.demo``) starts it; see
:mod:`zmongo.demo.main`.  The content classes and pages are in
:mod:`zmongo.demo.app`, the configuration in ``site.zcml``.
"""
