"""Writes made through a data manager's collection wrapper, in the log.

``insert_one``, ``update_many``, ``find_one_and_update``, ... on
``dm.get_collection(...)`` run in the data manager's session; to belong
to the transaction like its objects' writes they go into its write log:

* **server-transaction mode**: as the pymongo write that does the same
  again (a savepoint rollback or a lost server transaction sends the log
  again, these writes with it);
* **standalone mode**: with the writes that undo them.

The documents a write may change are read first, in one query (in
server-transaction mode only their ``_id``), and the write is then pinned
to exactly those (its filter and'ed with their ``_id``\\ s): their loaded
objects are turned into ghosts afterwards, a replay sends the same write
to the same documents, and in standalone mode the undo knows what each one
was before.

Standalone undo writes are logged *before* the write is sent
(write-ahead), so a write whose answer never comes (a cut connection, a
lost reply) is undone too: each matches only the document as the write
will have left it (never a later commit, see
``_bulk.whole_document_filter``), and what that is is known beforehand --
inserts and replaces write given documents, deletes leave none, and an
update is first run on a copy of the documents read, in a scratch
collection dropped at once (:class:`BulkPrediction`; four commands more).
Once the server answered, the documents are read again and the undo
writes logged are exactly those of what the write did (so an update whose
result differs from the copy's is still undone).

An update's ``$currentDate`` dates depend on the server's clock when it
runs, which nothing knows beforehand: in standalone mode they are set to
the time the data manager takes just before (``$set``, see
:func:`pinned_dates`), so the copy and the write store the same.  What an
update pipeline computes from ``$$NOW``, ``$$CLUSTER_TIME`` or ``$rand``,
and a ``$currentDate`` timestamp, stay unknown beforehand: if such a
write's answer is lost its undo writes find no document as predicted and
leave them (each is logged).

A document an upsert creates is known beforehand only if its ``_id`` is:
in standalone mode an upsert whose filter gives no ``_id`` (and matches
nothing when read) gets a client-made ``ObjectId`` (``$setOnInsert`` on a
copy of the update, or in a copy of a replacement, see
:func:`with_upsert_id`), the copy's run predicts the document, and the
write-ahead undo deletes it.  An update pipeline is left as it is (a stage
setting ``_id`` would be visible to its later stages): what it creates is
undone only once its answer came.

``bulk_write`` is logged as its requests in server-transaction mode.  In
standalone mode its requests are not pinned (a later request may match
what an earlier one wrote, as pymongo defines); instead the documents
matching any request's filter (and those its inserts name) are read first
-- every existing document the bulk can change is among them -- and the
bulk is first run on a copy of exactly those, in a scratch collection
that is dropped at once (:class:`BulkPrediction`): what it leaves there is
what the bulk will leave, and its write-ahead undo writes are those.
"""
import collections.abc
import copy
import datetime
import inspect
import logging
import uuid

import bson

import pymongo.errors
from pymongo import (DeleteMany, DeleteOne, InsertOne, ReplaceOne,
                     UpdateMany, UpdateOne)

from zmongo import _names
from zmongo._bulk import whole_document_filter

LOG = logging.getLogger(__name__)
ID = _names.ID
#: Methods that change at most one document chosen by a filter.
ONE = frozenset({'replace_one', 'update_one', 'delete_one',
                 'find_one_and_delete', 'find_one_and_replace',
                 'find_one_and_update'})
MANY = frozenset({'update_many', 'delete_many'})


def bind(method, args, kwargs):
    """The call's arguments, by name (pymongo's own signature)."""
    return inspect.signature(method).bind(*args, **kwargs)


def pinned_dates(update, now):
    """``update`` (an update document) with the dates of its
    ``$currentDate`` (``true`` or ``{$type: 'date'}``) set to ``now``
    instead (``$set``): a write whose answer is lost is undone only if
    what it left was known beforehand, and the server's clock is not.
    Unchanged if there are none, or if ``$set`` names the same field (the
    server refuses that update either way)."""
    if not isinstance(update, collections.abc.Mapping) or \
            not isinstance(update.get('$currentDate'),
                           collections.abc.Mapping):
        return update
    kept, dates = {}, {}
    for field, how in update['$currentDate'].items():
        if how is True or (isinstance(how, collections.abc.Mapping) and
                           dict(how) == {'$type': 'date'}):
            dates[field] = now
        else:
            kept[field] = how
    set_ = update.get('$set') or {}
    if not dates or not isinstance(set_, collections.abc.Mapping) or \
            set(dates) & set(set_):
        return update
    rewritten = dict(update)
    if kept:
        rewritten['$currentDate'] = kept
    else:
        del rewritten['$currentDate']
    rewritten['$set'] = dict(set_, **dates)
    return rewritten


def gives_id(spec):
    """Whether an upsert with filter ``spec`` may take its ``_id`` from
    it (an equality on ``_id`` or a part of it, also inside ``$and``):
    then it must not get one of ours (the server refuses two).  Unsure is
    yes."""
    if not isinstance(spec, collections.abc.Mapping):
        return True
    for field, cond in spec.items():
        if field == ID or str(field).startswith(ID + '.'):
            if isinstance(cond, collections.abc.Mapping) and cond and \
                    all(str(k).startswith('$') for k in cond) and \
                    not set(cond) & {'$eq', '$in', '$all'}:
                continue            # a range etc.: the server makes one
            return True
    return any(gives_id(part) for part in spec.get('$and') or ())


def with_upsert_id(document, spec, replacement=False):
    """``document`` (an update, or a replacement if ``replacement``) of an
    upsert with filter ``spec``, made to give the document it may create a
    client-made ``ObjectId`` (a copy: the caller's stays as it is) --
    unless ``spec`` gives the ``_id`` (:func:`gives_id`), the document
    already names it, or it is an update pipeline (left alone, see the
    module docstring)."""
    if not isinstance(document, collections.abc.Mapping) or gives_id(spec):
        return document
    if replacement:
        if ID in document:
            return document
        rewritten = {ID: bson.ObjectId()}
        rewritten.update(document)
        return rewritten
    for fields in document.values():
        if not isinstance(fields, collections.abc.Mapping) or any(
                f == ID or str(f).startswith(ID + '.') for f in fields):
            return document         # not an update document, or sets _id
    rewritten = dict(document)
    rewritten['$setOnInsert'] = dict(document.get('$setOnInsert') or {},
                                     **{ID: bson.ObjectId()})
    return rewritten


def _now():
    """The current time as BSON stores it (UTC, milliseconds)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def pinned(spec, ids):
    """``spec`` restricted to the documents ``ids``."""
    restrict = {ID: ids[0]} if len(ids) == 1 else {ID: {'$in': ids}}
    if not spec:
        return restrict
    return {'$and': [spec, restrict]}


class DirectWrite:
    """One call of a writing method of the wrapper: ``prepare`` (before
    it runs: reads what it may change, pins it), ``logged`` (after: what
    the write log gets)."""

    def __init__(self, collection, name, method, args, kwargs, standalone):
        self.collection = collection
        self.name = name
        self.method = method
        self.standalone = standalone
        self.bound = bind(method, args, kwargs)
        self.arguments = self.bound.arguments
        self.before = {}        # {_id: document before the write}
        #: What a standalone ``bulk_write`` will leave (BulkPrediction).
        self.prediction = None

    def prepare(self):
        """Read the documents the write may change (one query) and pin the
        write to them: their objects must be reloaded afterwards, and in
        standalone mode their undo needs them as they were (server-
        transaction mode reads only their ``_id``)."""
        if self.standalone:
            self._pin_dates()
        if self.name == 'bulk_write' and self.standalone:
            self.prediction = BulkPrediction(
                self.collection, self.arguments['requests'],
                self.arguments.get('ordered', True),
                self.arguments.get('session'), let=self.arguments.get('let'))
            self.before = self.prediction.before
            self.arguments['requests'] = self.prediction.requests
            return
        if self.name in ('insert_one', 'insert_many') and self.standalone:
            self.prediction = Prediction()
            docs = [self.arguments['document']] if self.name == 'insert_one' \
                else self.arguments['documents']
            for doc in docs:
                self.prediction.insert(doc)
            return
        if self.name not in ONE | MANY:
            return
        arguments = self.arguments
        spec = arguments.get('filter') or {}
        session = arguments.get('session')
        projection = None if self.standalone else {ID: 1}
        # The read matches what the write will: same variables, same
        # collation (a caseless write pinned to a case-sensitive read
        # would change fewer documents than asked).
        options = {k: arguments[k] for k in ('let', 'collation')
                   if arguments.get(k) is not None}
        if self.name in ONE:
            docs = list(self.collection.find(
                spec, projection, sort=arguments.get('sort'), limit=1,
                session=session, **options))
        else:
            docs = list(self.collection.find(spec, projection,
                                             session=session, **options))
        self.before = {doc[ID]: doc for doc in docs}
        if docs:
            arguments['filter'] = pinned(spec, [doc[ID] for doc in docs])
        elif not arguments.get('upsert'):
            # Nothing matches now: the write must change nothing either
            # (an upsert keeps its filter: it may create one).
            arguments['filter'] = pinned(spec, [_NOTHING])
        elif self.standalone:
            # It creates one: with an _id known now (see the docstring).
            key = 'replacement' if 'replace' in self.name else 'update'
            if key in arguments:
                arguments[key] = with_upsert_id(
                    arguments[key], spec, key == 'replacement')
        if self.standalone:
            self.prediction = self._predict()

    def _pin_dates(self):
        """Standalone mode: an update's ``$currentDate`` dates become the
        time now, chosen here (see :func:`pinned_dates`), so the run on the
        copy and the write store the same and the write-ahead undo matches
        what the write left even if its answer is lost."""
        a = self.arguments
        if self.name in ('update_one', 'update_many', 'find_one_and_update'):
            a['update'] = pinned_dates(a['update'], _now())
        elif self.name == 'bulk_write':
            now = _now()
            a['requests'] = [_request_with_pinned_dates(r, now)
                             for r in a['requests']]

    def _predict(self):
        """Standalone mode: what the (pinned) write will leave of the
        documents read, found before it is sent (see the module
        docstring).  A document an upsert would create is not known
        before the answer unless its ``_id`` is (see :func:`with_upsert_id`):
        it is found by running it on an empty copy."""
        a = self.arguments
        name = self.name
        if 'delete' in name:
            return Prediction()             # gone
        options = {k: a[k] for k in ('collation', 'array_filters')
                   if a.get(k) is not None}
        if not self.before and a.get('upsert'):
            if 'replace' in name:
                request = ReplaceOne(a['filter'], a['replacement'],
                                     upsert=True, **({
                                         'collation': a['collation']}
                                         if a.get('collation') else {}))
            else:
                klass = UpdateMany if name in MANY else UpdateOne
                request = klass(a['filter'], a['update'], upsert=True,
                                **options)
            return BulkPrediction(self.collection, [request], True,
                                  before={}, let=a.get('let'))
        if 'replace' in name:
            found = Prediction()
            for id_ in self.before:
                doc = dict(a['replacement'])
                doc[ID] = id_
                found.after[id_] = doc
            return found
        if not self.before:
            return Prediction()             # changes nothing
        klass = UpdateMany if name in MANY else UpdateOne
        return BulkPrediction(self.collection,
                              [klass(a['filter'], a['update'], **options)],
                              True, before=self.before, let=a.get('let'))

    def call(self):
        return self.method(*self.bound.args, **self.bound.kwargs)

    def replay_ops(self, result):
        """The pymongo writes that do this write again."""
        a = self.arguments
        name = self.name
        if name == 'insert_one':
            return [InsertOne(a['document'])]
        if name == 'insert_many':
            return [InsertOne(doc) for doc in a['documents']]
        if name == 'bulk_write':
            return list(a['requests'])
        spec = a.get('filter')
        if name.startswith('find_one_and_'):
            if isinstance(result, dict) and ID in result:
                spec = {ID: result[ID]}
            elif name == 'find_one_and_delete' or not a.get('upsert'):
                return []
        upsert = bool(a.get('upsert'))
        if name in ('replace_one', 'find_one_and_replace'):
            return [ReplaceOne(spec, a['replacement'], upsert=upsert)]
        if name in ('update_one', 'find_one_and_update'):
            return [UpdateOne(spec, a['update'], upsert=upsert)]
        if name == 'update_many':
            return [UpdateMany(spec, a['update'], upsert=upsert)]
        if name in ('delete_one', 'find_one_and_delete'):
            return [DeleteOne(spec)]
        if name == 'delete_many':
            return [DeleteMany(spec)]
        return []

    def touched_ids(self, result):
        """The ``_id``\\ s of the documents this write may have changed or
        created."""
        ids = list(self.before)
        if self.prediction is not None:
            # What it will leave or create (an upsert with an _id known
            # beforehand too).
            ids.extend(self.prediction.after)
        a = self.arguments
        if self.name == 'insert_one':
            ids.append(a['document'][ID])
        elif self.name == 'insert_many':
            ids.extend(doc[ID] for doc in a['documents'])
        elif getattr(result, 'upserted_id', None) is not None:
            ids.append(result.upserted_id)
        elif self.name == 'bulk_write' and self.prediction is not None:
            ids.extend(self.prediction.inserted_ids)
            ids.extend((getattr(result, 'upserted_ids', None) or {})
                       .values())
        elif self.name.startswith('find_one_and_') and \
                isinstance(result, dict) and ID in result:
            ids.append(result[ID])
        return list(dict.fromkeys(ids))

    def undo_ops(self, after):
        """The writes that put back what this write changed, given the
        documents as it left them (``after``: ``{_id: document}``)."""
        ops = []
        for id_ in dict.fromkeys(list(self.before) + list(after)):
            old, new = self.before.get(id_), after.get(id_)
            if old is None and new is not None:
                ops.append(DeleteOne(whole_document_filter(id_, new)))
            elif old is not None and new is None:
                body = {k: v for k, v in old.items() if k != ID}
                ops.append(UpdateOne({ID: id_}, {'$setOnInsert': body},
                                     upsert=True))
            elif old is not None and old != new:
                ops.append(ReplaceOne(whole_document_filter(id_, new), old))
        return ops


#: An ``_id`` no document has (a pinned filter matching nothing).
_NOTHING = {'zmongo_no_document': True}

#: Bulk requests, by what they do (see :func:`request_parts`).
_REQUEST_KINDS = ((InsertOne, 'insert'), (ReplaceOne, 'replace'),
                  (UpdateOne, 'update'), (UpdateMany, 'update'),
                  (DeleteOne, 'delete'), (DeleteMany, 'delete'))


def request_parts(request):
    """``(kind, filter, document)`` of a pymongo bulk request: kind is
    ``'insert'``, ``'replace'``, ``'update'`` or ``'delete'``.

    pymongo offers no public way to read a request back; its request
    classes have kept their constructor's arguments as ``_filter`` and
    ``_doc`` since pymongo 3, and this is the one place that reads them
    (:func:`_request_with_pinned_dates` and ``BulkPrediction._pinned`` the
    ones that set ``_doc``; the latter reads ``_upsert`` too).
    A request of another kind is refused (its undo could not be known).
    """
    for klass, kind in _REQUEST_KINDS:
        if isinstance(request, klass):
            break
    else:
        raise TypeError(
            'bulk_write through a standalone data manager\'s collection '
            'wrapper cannot undo %r: only InsertOne, ReplaceOne, UpdateOne, '
            'UpdateMany, DeleteOne and DeleteMany requests' % (request,))
    try:
        doc = None if kind == 'delete' else getattr(request, '_doc')
        spec = None if kind == 'insert' else getattr(request, '_filter')
    except AttributeError:
        raise TypeError(
            'cannot read %r back (this pymongo, %s, keeps its requests\' '
            'filter and document elsewhere): its undo cannot be known' % (
                request, pymongo.version)) from None
    return kind, spec, doc


def _request_with_pinned_dates(request, now):
    """An update request of a bulk with its update passed through
    :func:`pinned_dates` (a copy: the caller's request is left alone);
    like :func:`request_parts`, it relies on pymongo keeping the update
    as ``_doc``."""
    if not isinstance(request, (UpdateOne, UpdateMany)):
        return request
    _, _, update = request_parts(request)
    rewritten = pinned_dates(update, now)
    if rewritten is update:
        return request
    request = copy.copy(request)
    request._doc = rewritten
    return request


def _collation(request):
    """The collation a bulk request matches with, hashable (None: the
    collection's).  Read as ``request_parts`` reads filters."""
    collation = getattr(request, '_collation', None)
    if collation is None:
        return None
    if not isinstance(collation, dict):
        collation = collation.document
    return tuple(sorted(collation.items()))


class Prediction:
    r"""What a write will leave, found before it is sent: ``after``
    (``{_id: document}``; a document read before and absent here is
    deleted) and the ``_id``\ s of the documents it inserts."""

    def __init__(self):
        self.after = {}
        self.inserted_ids = []

    def insert(self, doc):
        """``doc`` is inserted: it gets its ``_id`` now if it has none (as
        pymongo would give it one), so the undo can name it."""
        if ID not in doc:
            doc[ID] = bson.ObjectId()
        self.inserted_ids.append(doc[ID])
        self.after[doc[ID]] = doc


class BulkPrediction(Prediction):
    r"""What a ``bulk_write`` of ``requests`` to ``collection`` will leave,
    found before it is sent (standalone mode, see the module docstring).

    ``before``: ``{_id: document}`` of every existing document it may
    change; ``inserted_ids``: the ``_id``\ s its inserts write (given to
    documents that had none, as pymongo would, so the run on the copy and
    the real one agree); ``after``: ``{_id: document}`` as the bulk will
    leave the documents of ``before`` and ``inserted_ids`` (absent:
    deleted or never written).  Documents an upsert creates are known only
    from the server's answer.
    """

    def __init__(self, collection, requests, ordered, session=None,
                 before=None, let=None):
        super().__init__()
        self._options = {} if let is None else {'let': let}
        # Filters by the collation their request matches with (None: the
        # collection's): one read per collation.
        filters = {}
        for request in requests:
            kind, spec, doc = request_parts(request)
            if kind == 'insert':
                self.insert(doc)
            else:
                filters.setdefault(_collation(request), []).append(
                    spec or {})
        if self.inserted_ids:
            filters.setdefault(None, []).append(
                {ID: {'$in': self.inserted_ids}})
        if before is None:
            before = {}
            for collation, specs in filters.items():
                options = dict(self._options)
                if collation is not None:
                    options['collation'] = dict(collation)
                before.update((doc[ID], doc) for doc in collection.find(
                    {'$or': specs}, session=session, **options))
        self.before = before
        #: ``requests`` as sent: upserts given an _id (see ``_pinned``).
        self.requests = self._pinned(requests)
        self.after = self._run_on_a_copy(collection, self.requests, ordered)

    def _pinned(self, requests):
        """``requests`` with the upserts whose filter gives no ``_id``
        given one of ours (copies; see :func:`with_upsert_id`).  An update's
        ``$setOnInsert`` is ignored where it matches a document; a
        replacement's ``_id`` is not, so a ``ReplaceOne`` gets one only if
        no document matched any filter when read and only deletes come
        before it (then it matches nothing either)."""
        pinned_requests, only_deletes = [], not self.before
        for request in requests:
            kind, spec, doc = request_parts(request)
            if getattr(request, '_upsert', False) and (
                    kind == 'update' or (kind == 'replace' and only_deletes)):
                rewritten = with_upsert_id(doc, spec, kind == 'replace')
                if rewritten is not doc:
                    request = copy.copy(request)
                    request._doc = rewritten
            if kind != 'delete':
                only_deletes = False
            pinned_requests.append(request)
        return pinned_requests

    def _run_on_a_copy(self, collection, requests, ordered):
        scratch = collection.database.get_collection(
            'zmongo_undo_%s' % uuid.uuid4().hex,
            codec_options=collection.codec_options,
            write_concern=collection.write_concern)
        try:
            if self.before:
                scratch.insert_many(list(self.before.values()))
            try:
                scratch.bulk_write(list(requests), ordered=ordered,
                                   **self._options)
            except pymongo.errors.OperationFailure:
                # The real bulk stops (or skips) alike; a difference (a
                # unique index or a hint the copy lacks) only makes an undo
                # write find its document otherwise and leave it (logged),
                # and once the real one is answered its documents are read
                # back anyway.
                pass
            # All of it: what was read, inserted, or created by upserts.
            return {doc[ID]: doc for doc in scratch.find()}
        finally:
            try:
                scratch.drop()
            except pymongo.errors.PyMongoError:
                # The server went away in the middle: the write itself
                # fails next (or failed); the copy is left over.
                LOG.warning('could not drop %s.%s, the scratch copy of the '
                            'documents a write through the collection '
                            'wrapper of %s was about to change; drop it by '
                            'hand', scratch.database.name, scratch.name,
                            collection.name, exc_info=True)
