"""The example site of ``docs/zope.rst``: a Grok application whose content
lives in MongoDB, connected by ``site.zcml`` alone.

``docs/zope.rst`` includes these files verbatim and runs them (it loads
``site.zcml``, which groks ``mysite.app``, and browses the site with
zope.testbrowser), so the example cannot drift from working code.
"""
