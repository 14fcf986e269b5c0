/* A branch's state tree (docs/PROTOCOL.md §8) in C, where it is hot: speed only.
 *
 * set_hash(leaves, depth), inner_hash(left, right), update_one(node, item, depth,
 * pack) and update(node, items, depth, pack) compute exactly what
 * protocol/state_tree.py's pure-Python _set_hash_py, _inner_hash_py, _update_one_py and
 * _update_py compute for the trees and items state_tree.py
 * makes: the same recursion, the same split, the same nodes (tuples), the same
 * ValueError for two subjects with one key. What the Python would not be given (a
 * node of another shape, a key or leaf of another length) raises TypeError here.
 * state_tree.py uses these when this module was built and falls back to the Python
 * otherwise (a machine without a C compiler or OpenSSL's headers installs without
 * it: the extension is optional in pyproject.toml). entry_item(...) is
 * state_tree.entry_item's (key, leaf hash || key) of one entry, from its value's encoded
 * bytes. tests/test_state_root.py checks
 * the two agree on random and adversarial inputs, and the examples of PROTOCOL.md
 * are checked against whichever one is in use.
 *
 * SHA-256 is OpenSSL's (libcrypto), the library Python's hashlib uses too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
/* The low-level SHA256_Init/Update/Final: OpenSSL 3 deprecates them, but its one-shot
 * SHA256() looks the algorithm up on every call and costs twice as much for 65 bytes. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define HASH_SIZE 32
#define LEAF_SIZE 64 /* leaf hash || key */
#define KEY_BITS 256
#define STACK_LEAVES 64

static void
sha256(const unsigned char *data, size_t size, unsigned char *out)
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, size);
    SHA256_Final(out, &ctx);
}

/* sha256(b"") */
static const unsigned char EMPTY[HASH_SIZE] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

/* §8's node(S, depth) over leaves[0..n), as state_tree._set_hash_py: one leaf is carried
 * up as its hash; otherwise split at the first leaf whose key bit ``depth`` is 1, hash
 * each side (EMPTY for an empty side) and hash 0x01 || left || right. Returns -1 when two
 * leaves reach depth 256 (the same key); the caller raises. */
static int
set_hash(const unsigned char **leaves, Py_ssize_t n, int depth, unsigned char *out)
{
    unsigned char buf[1 + 2 * HASH_SIZE];
    Py_ssize_t i = 0;
    int byte, shift;

    if (n == 1) {
        memcpy(out, leaves[0], HASH_SIZE);
        return 0;
    }
    if (depth >= KEY_BITS)
        return -1;
    byte = HASH_SIZE + (depth >> 3);
    shift = 7 - (depth & 7);
    while (i < n && !((leaves[i][byte] >> shift) & 1))
        i++;
    buf[0] = 0x01;
    if (i == 0)
        memcpy(buf + 1, EMPTY, HASH_SIZE);
    else if (set_hash(leaves, i, depth + 1, buf + 1) < 0)
        return -1;
    if (i == n)
        memcpy(buf + 1 + HASH_SIZE, EMPTY, HASH_SIZE);
    else if (set_hash(leaves + i, n - i, depth + 1, buf + 1 + HASH_SIZE) < 0)
        return -1;
    sha256(buf, sizeof buf, out);
    return 0;
}

static PyObject *
py_set_hash(PyObject *module, PyObject *args)
{
    PyObject *seq, *fast, *result = NULL;
    int depth;
    const unsigned char *stack[STACK_LEAVES];
    const unsigned char **leaves = stack;
    unsigned char out[HASH_SIZE];
    Py_ssize_t n, k;

    if (!PyArg_ParseTuple(args, "Oi:set_hash", &seq, &depth))
        return NULL;
    if (depth < 0 || depth > KEY_BITS) {
        PyErr_SetString(PyExc_ValueError, "depth outside [0, 256]");
        return NULL;
    }
    fast = PySequence_Fast(seq, "leaves must be a sequence");
    if (fast == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    if (n > STACK_LEAVES) {
        leaves = PyMem_Malloc(n * sizeof *leaves);
        if (leaves == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (k = 0; k < n; k++) {
        PyObject *leaf = PySequence_Fast_GET_ITEM(fast, k);
        if (!PyBytes_Check(leaf) || PyBytes_GET_SIZE(leaf) != LEAF_SIZE) {
            PyErr_SetString(PyExc_TypeError, "a leaf is 64 bytes: leaf hash || key");
            goto done;
        }
        leaves[k] = (const unsigned char *)PyBytes_AS_STRING(leaf);
    }
    if (set_hash(leaves, n, depth, out) < 0) {
        PyErr_SetString(PyExc_ValueError, "two subjects with the same key");
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
done:
    if (leaves != stack)
        PyMem_Free(leaves);
    Py_DECREF(fast);
    return result;
}

static PyObject *
py_inner_hash(PyObject *module, PyObject *args)
{
    Py_buffer left, right;
    unsigned char stack[1 + 2 * HASH_SIZE], out[HASH_SIZE];
    unsigned char *buf = stack;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*:inner_hash", &left, &right))
        return NULL;
    if (left.len + right.len > 2 * HASH_SIZE) {
        buf = PyMem_Malloc(1 + left.len + right.len);
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    buf[0] = 0x01;
    memcpy(buf + 1, left.buf, left.len);
    memcpy(buf + 1 + left.len, right.buf, right.len);
    sha256(buf, 1 + left.len + right.len, out);
    result = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
done:
    if (buf != stack)
        PyMem_Free(buf);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    return result;
}

/* ------------------------------------------------------------------ one update
 * update_one(node, item, depth, pack) is state_tree._update_one_py: the tree ``node`` (at
 * ``depth``) with ``item`` = (key, leaf or None) put in or removed, re-hashing its path
 * only. Nodes are the Python module's tuples: None, (hash, left, right) or (hash, leaves);
 * ``pack`` is state_tree.PACK. A node of another shape raises TypeError. */

static int
check_hash(PyObject *h)
{
    if (!PyBytes_CheckExact(h) || PyBytes_GET_SIZE(h) != HASH_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a node's hash is 32 bytes");
        return -1;
    }
    return 0;
}

/* 3: an inner node, 2: a pack, 0: None; -1 (TypeError) for anything else */
static int
node_kind(PyObject *n)
{
    if (n == Py_None)
        return 0;
    if (PyTuple_CheckExact(n)) {
        Py_ssize_t size = PyTuple_GET_SIZE(n);
        if ((size == 3 || (size == 2 && PyTuple_CheckExact(PyTuple_GET_ITEM(n, 1)))) &&
            check_hash(PyTuple_GET_ITEM(n, 0)) == 0)
            return (int)size;
        if (PyErr_Occurred())
            return -1;
    }
    PyErr_SetString(PyExc_TypeError, "not a state tree node");
    return -1;
}

static const unsigned char *
hash_or_empty(PyObject *n)
{
    return n == Py_None ? EMPTY : (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(n, 0));
}

/* (inner_hash(left, right), left, right); new reference */
static PyObject *
make_inner(PyObject *left, PyObject *right)
{
    unsigned char buf[1 + 2 * HASH_SIZE], out[HASH_SIZE];
    PyObject *h, *node;

    buf[0] = 0x01;
    memcpy(buf + 1, hash_or_empty(left), HASH_SIZE);
    memcpy(buf + 1 + HASH_SIZE, hash_or_empty(right), HASH_SIZE);
    sha256(buf, sizeof buf, out);
    h = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
    if (h == NULL)
        return NULL;
    node = PyTuple_Pack(3, h, left, right);
    Py_DECREF(h);
    return node;
}

static int
lone(PyObject *n)
{
    return n != Py_None && PyTuple_GET_SIZE(n) == 2 && PyTuple_GET_SIZE(PyTuple_GET_ITEM(n, 1)) == 1;
}

/* state_tree._join: a lone entry is carried up; new reference */
static PyObject *
join(PyObject *left, PyObject *right)
{
    if (left == Py_None && (right == Py_None || lone(right))) {
        Py_INCREF(right);
        return right;
    }
    if (right == Py_None && lone(left)) {
        Py_INCREF(left);
        return left;
    }
    return make_inner(left, right);
}

/* state_tree._make over sorted 64-byte leaves; new reference */
static PyObject *
make(PyObject **leaves, Py_ssize_t n, int depth, Py_ssize_t pack)
{
    PyObject *left, *right, *node;
    Py_ssize_t i = 0, k;
    int byte, shift;

    if (n == 0)
        Py_RETURN_NONE;
    if (n <= pack) {
        const unsigned char *stack[STACK_LEAVES];
        unsigned char out[HASH_SIZE];
        PyObject *h, *tuple;
        if (n > STACK_LEAVES) {
            PyErr_SetString(PyExc_ValueError, "pack too large");
            return NULL;
        }
        for (k = 0; k < n; k++)
            stack[k] = (const unsigned char *)PyBytes_AS_STRING(leaves[k]);
        if (set_hash(stack, n, depth, out) < 0) {
            PyErr_SetString(PyExc_ValueError, "two subjects with the same key");
            return NULL;
        }
        tuple = PyTuple_New(n);
        if (tuple == NULL)
            return NULL;
        for (k = 0; k < n; k++) {
            Py_INCREF(leaves[k]);
            PyTuple_SET_ITEM(tuple, k, leaves[k]);
        }
        h = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
        if (h == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        node = PyTuple_Pack(2, h, tuple);
        Py_DECREF(h);
        Py_DECREF(tuple);
        return node;
    }
    if (depth >= KEY_BITS) {
        PyErr_SetString(PyExc_ValueError, "two subjects with the same key");
        return NULL;
    }
    byte = HASH_SIZE + (depth >> 3);
    shift = 7 - (depth & 7);
    while (i < n && !((((const unsigned char *)PyBytes_AS_STRING(leaves[i]))[byte] >> shift) & 1))
        i++;
    left = make(leaves, i, depth + 1, pack);
    if (left == NULL)
        return NULL;
    right = make(leaves + i, n - i, depth + 1, pack);
    if (right == NULL) {
        Py_DECREF(left);
        return NULL;
    }
    node = make_inner(left, right);
    Py_DECREF(left);
    Py_DECREF(right);
    return node;
}

typedef struct {
    const unsigned char *key;
    PyObject *leaf; /* borrowed: the caller's items list holds it */
} Item;

/* state_tree._repack: the pack (or None) ``node`` merged with items[0..n) (sorted, distinct keys),
 * its leaves checked to be in order as they merge; new reference */
static PyObject *
repack(PyObject *node, const Item *items, Py_ssize_t n, int depth, Py_ssize_t pack)
{
    PyObject *old = node == Py_None ? NULL : PyTuple_GET_ITEM(node, 1);
    Py_ssize_t no = old == NULL ? 0 : PyTuple_GET_SIZE(old), i = 0, j = 0, m = 0;
    PyObject *stack[2 * STACK_LEAVES], **out = stack, *result;
    const unsigned char *prev = NULL;

    if (no > STACK_LEAVES) {
        PyErr_SetString(PyExc_ValueError, "pack too large");
        return NULL;
    }
    if (no + n > 2 * STACK_LEAVES && (out = PyMem_New(PyObject *, no + n)) == NULL)
        return PyErr_NoMemory();
    while (i < no || j < n) {
        int c;
        if (i < no) {
            PyObject *l = PyTuple_GET_ITEM(old, i);
            const unsigned char *k;
            if (!PyBytes_CheckExact(l) || PyBytes_GET_SIZE(l) != LEAF_SIZE) {
                PyErr_SetString(PyExc_TypeError, "a leaf is 64 bytes: leaf hash || key");
                goto fail;
            }
            k = (const unsigned char *)PyBytes_AS_STRING(l) + HASH_SIZE;
            if (prev != NULL && memcmp(prev, k, HASH_SIZE) >= 0) {
                PyErr_SetString(PyExc_ValueError, "a pack's leaves are not sorted by key");
                goto fail;
            }
            c = j < n ? memcmp(k, items[j].key, HASH_SIZE) : -1;
            if (c <= 0)
                prev = k;
        } else {
            c = 1;
        }
        if (c < 0) { /* an old leaf no item touches */
            out[m++] = PyTuple_GET_ITEM(old, i++);
            continue;
        }
        if (items[j].leaf != Py_None) /* put in (c > 0) or replacing (c == 0) */
            out[m++] = items[j].leaf;
        if (c == 0)
            i++;
        j++;
    }
    result = make(out, m, depth, pack);
    if (out != stack)
        PyMem_Free(out);
    return result;
fail:
    if (out != stack)
        PyMem_Free(out);
    return NULL;
}

/* update_one's walk: down the path of ``key``, repack at its bottom, re-hash back up;
 * ``key`` and ``leaf`` already checked; new reference */
static PyObject *
update_one(PyObject *node, const unsigned char *key, PyObject *leaf, int depth, Py_ssize_t pack)
{
    PyObject *trail[KEY_BITS], *new, *next;
    int dirs[KEY_BITS], t = 0, kind;

    while ((kind = node_kind(node)) == 3) {
        int right;
        if (depth >= KEY_BITS) {
            PyErr_SetString(PyExc_ValueError, "a path longer than 256");
            return NULL;
        }
        right = (key[depth >> 3] >> (7 - (depth & 7))) & 1;
        trail[t] = node;
        dirs[t++] = right;
        node = PyTuple_GET_ITEM(node, right ? 2 : 1);
        depth++;
    }
    if (kind < 0)
        return NULL;
    {
        Item item = {key, leaf};
        new = repack(node, &item, 1, depth, pack);
    }
    while (new != NULL && t > 0) {
        PyObject *parent = trail[--t], *left, *right;
        if (dirs[t]) {
            left = PyTuple_GET_ITEM(parent, 1);
            right = new;
        } else {
            left = new;
            right = PyTuple_GET_ITEM(parent, 2);
        }
        if (node_kind(left) < 0 || node_kind(right) < 0) {
            Py_DECREF(new);
            return NULL;
        }
        next = left != Py_None && right != Py_None ? make_inner(left, right) : join(left, right);
        Py_DECREF(new);
        new = next;
    }
    return new;
}

/* an item (key, leaf or None): 0 with *key and *leaf set, or -1 with TypeError */
static int
parse_item(PyObject *item, const unsigned char **key, PyObject **leaf)
{
    PyObject *keyobj;

    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "an item is (key, leaf or None)");
        return -1;
    }
    keyobj = PyTuple_GET_ITEM(item, 0);
    *leaf = PyTuple_GET_ITEM(item, 1);
    if (!PyBytes_CheckExact(keyobj) || PyBytes_GET_SIZE(keyobj) != HASH_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a key is 32 bytes");
        return -1;
    }
    *key = (const unsigned char *)PyBytes_AS_STRING(keyobj);
    if (*leaf != Py_None && (!PyBytes_CheckExact(*leaf) || PyBytes_GET_SIZE(*leaf) != LEAF_SIZE ||
                             memcmp(PyBytes_AS_STRING(*leaf) + HASH_SIZE, *key, HASH_SIZE) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a leaf is 64 bytes: leaf hash || its key");
        return -1;
    }
    return 0;
}

static int
check_depth_pack(int depth, Py_ssize_t pack)
{
    if (depth < 0 || depth > KEY_BITS || pack < 1 || pack > STACK_LEAVES) {
        PyErr_SetString(PyExc_ValueError, "depth outside [0, 256] or pack outside [1, 64]");
        return -1;
    }
    return 0;
}

static PyObject *
py_update_one(PyObject *module, PyObject *args)
{
    PyObject *node, *item, *leaf;
    int depth;
    Py_ssize_t pack;
    const unsigned char *key;

    if (!PyArg_ParseTuple(args, "OO!in:update_one", &node, &PyTuple_Type, &item, &depth, &pack))
        return NULL;
    if (parse_item(item, &key, &leaf) < 0 || check_depth_pack(depth, pack) < 0)
        return NULL;
    return update_one(node, key, leaf, depth, pack);
}

/* ------------------------------------------------------------------ many updates
 * update(node, items, depth, pack) is state_tree._update_py: ``items`` (sorted by key,
 * distinct keys: ValueError otherwise) put in or removed in one walk; each subtree that
 * some item reaches is rebuilt once, the rest shared. */

static PyObject *update_many(PyObject *node, const Item *items, Py_ssize_t n, int depth, Py_ssize_t pack);

/* one child of an inner node with items[0..n) put in: updated, or (no item) itself, checked; new reference */
static PyObject *
child_with(PyObject *child, const Item *items, Py_ssize_t n, int depth, Py_ssize_t pack)
{
    if (n > 0)
        return update_many(child, items, n, depth, pack);
    if (node_kind(child) < 0)
        return NULL;
    Py_INCREF(child);
    return child;
}

static PyObject *
update_many(PyObject *node, const Item *items, Py_ssize_t n, int depth, Py_ssize_t pack)
{
    PyObject *left, *right, *result;
    Py_ssize_t i = 0;
    int kind, byte, shift;

    if ((kind = node_kind(node)) < 0)
        return NULL;
    if (n == 0) {
        Py_INCREF(node);
        return node;
    }
    if (n == 1)
        return update_one(node, items[0].key, items[0].leaf, depth, pack);
    if (kind != 3)
        return repack(node, items, n, depth, pack);
    if (depth >= KEY_BITS) {
        PyErr_SetString(PyExc_ValueError, "a path longer than 256");
        return NULL;
    }
    byte = depth >> 3;
    shift = 7 - (depth & 7);
    while (i < n && !((items[i].key[byte] >> shift) & 1))
        i++;
    if ((left = child_with(PyTuple_GET_ITEM(node, 1), items, i, depth + 1, pack)) == NULL)
        return NULL;
    if ((right = child_with(PyTuple_GET_ITEM(node, 2), items + i, n - i, depth + 1, pack)) == NULL) {
        Py_DECREF(left);
        return NULL;
    }
    result = join(left, right);
    Py_DECREF(left);
    Py_DECREF(right);
    return result;
}

static PyObject *
py_update(PyObject *module, PyObject *args)
{
    PyObject *node, *list, *fast, *result;
    int depth;
    Py_ssize_t pack, n, k;
    Item stack[STACK_LEAVES], *items = stack;

    if (!PyArg_ParseTuple(args, "OOin:update", &node, &list, &depth, &pack))
        return NULL;
    if (check_depth_pack(depth, pack) < 0)
        return NULL;
    fast = PySequence_Fast(list, "items must be a sequence");
    if (fast == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    if (n > STACK_LEAVES && (items = PyMem_New(Item, n)) == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    result = NULL;
    for (k = 0; k < n; k++) {
        if (parse_item(PySequence_Fast_GET_ITEM(fast, k), &items[k].key, &items[k].leaf) < 0)
            goto done;
        if (k > 0 && memcmp(items[k - 1].key, items[k].key, HASH_SIZE) >= 0) {
            PyErr_SetString(PyExc_ValueError, "items are not sorted by key, or repeat one");
            goto done;
        }
    }
    result = update_many(node, items, n, depth, pack);
done:
    if (items != stack)
        PyMem_Free(items);
    Py_DECREF(fast);
    return result;
}

/* msgpack's shortest header for a str of n bytes (§2.1); returns its length, or 0 for n
 * past str16 (the caller takes the Python path). */
static int
str_header(unsigned char *out, Py_ssize_t n)
{
    if (n < 32) {
        out[0] = (unsigned char)(0xa0 | n);
        return 1;
    }
    if (n < 256) {
        out[0] = 0xd9;
        out[1] = (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        out[0] = 0xda;
        out[1] = (unsigned char)(n >> 8);
        out[2] = (unsigned char)n;
        return 3;
    }
    return 0;
}

/* msgpack's shortest form of a non-negative integer (§2.1); returns its length. */
static int
uint_bytes(unsigned char *out, unsigned long long v)
{
    int n, i;
    if (v < 128) {
        out[0] = (unsigned char)v;
        return 1;
    }
    if (v <= 0xff) {
        out[0] = 0xcc;
        n = 1;
    } else if (v <= 0xffff) {
        out[0] = 0xcd;
        n = 2;
    } else if (v <= 0xffffffffULL) {
        out[0] = 0xce;
        n = 4;
    } else {
        out[0] = 0xcf;
        n = 8;
    }
    for (i = 0; i < n; i++)
        out[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    return 1 + n;
}

/* entry_item(subject, seq, record_hash, height, value) -> (key, leaf hash || key), or
 * None for what this does not take (the caller computes it in Python then): an entry's
 * item of a state update (§8), its leaf being encode([subject, seq, record_hash, height,
 * value]) with ``value`` given already encoded (bytes: a record's body, as its canonical
 * bytes hold it) or None (nil: a withdrawn entry). The leaf is hashed in pieces, never
 * assembled; the key is sha256 of the subject's UTF-8. */
static PyObject *
py_entry_item(PyObject *module, PyObject *args)
{
    PyObject *subject, *seq_obj, *record_hash, *height_obj, *value;
    const char *utf8;
    Py_ssize_t size;
    unsigned long long seq, height = 0;
    unsigned char head[1 + 1 + 3 + 9 + 2], tail[9], nil = 0xc0, item[2 * HASH_SIZE];
    int at = 0, n;
    SHA256_CTX ctx;

    if (!PyArg_ParseTuple(args, "UOOOO", &subject, &seq_obj, &record_hash, &height_obj, &value))
        return NULL;
    if (!PyLong_CheckExact(seq_obj) || !PyLong_CheckExact(height_obj) || !PyBytes_CheckExact(record_hash) ||
        PyBytes_GET_SIZE(record_hash) > 255 || (value != Py_None && !PyBytes_CheckExact(value)))
        Py_RETURN_NONE;
    seq = PyLong_AsUnsignedLongLong(seq_obj);
    if (!PyErr_Occurred())
        height = PyLong_AsUnsignedLongLong(height_obj);
    if (PyErr_Occurred()) { /* either negative or past 64 bits: the caller's Python takes it */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if ((utf8 = PyUnicode_AsUTF8AndSize(subject, &size)) == NULL) { /* a lone surrogate */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    head[at++] = 0x00; /* the leaf's domain byte (state_tree.leaf_hash) */
    head[at++] = 0x95; /* a 5-array */
    if ((n = str_header(head + at, size)) == 0)
        Py_RETURN_NONE;
    at += n;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, head, (size_t)at);
    SHA256_Update(&ctx, utf8, (size_t)size);
    at = uint_bytes(head, seq);
    head[at++] = 0xc4; /* bin8 */
    head[at++] = (unsigned char)PyBytes_GET_SIZE(record_hash);
    SHA256_Update(&ctx, head, (size_t)at);
    SHA256_Update(&ctx, PyBytes_AS_STRING(record_hash), (size_t)PyBytes_GET_SIZE(record_hash));
    SHA256_Update(&ctx, tail, (size_t)uint_bytes(tail, height));
    if (value == Py_None)
        SHA256_Update(&ctx, &nil, 1);
    else
        SHA256_Update(&ctx, PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value));
    SHA256_Final(item, &ctx);
    sha256((const unsigned char *)utf8, (size_t)size, item + HASH_SIZE);
    return Py_BuildValue("(y#y#)", item + HASH_SIZE, (Py_ssize_t)HASH_SIZE, item, (Py_ssize_t)(2 * HASH_SIZE));
}

static PyMethodDef methods[] = {
    {"set_hash", py_set_hash, METH_VARARGS,
     "set_hash(leaves, depth) -> bytes: §8's node(S, depth) over sorted 64-byte leaves."},
    {"inner_hash", py_inner_hash, METH_VARARGS,
     "inner_hash(left, right) -> bytes: sha256(0x01 || left || right)."},
    {"update_one", py_update_one, METH_VARARGS,
     "update_one(node, (key, leaf or None), depth, pack) -> node: state_tree._update_one_py."},
    {"update", py_update, METH_VARARGS,
     "update(node, items, depth, pack) -> node: state_tree._update_py (items sorted by key, distinct)."},
    {"entry_item", py_entry_item, METH_VARARGS,
     "entry_item(subject, seq, record_hash, height, value bytes or None) -> (key, leaf hash || key) or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_treehash", "The state tree's hashing in C (speed only; see state_tree.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__treehash(void)
{
    return PyModule_Create(&module);
}
