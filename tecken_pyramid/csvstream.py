"""Streaming a query as CSV: the public report and the console's export.

The query starts before the response is returned, so an unavailable database
is answered by the caller (503) rather than with a truncated 200; rows are then
read in partitions from a server-side cursor (PostgreSQL), so memory stays flat
however many rows there are.
"""

import csv
import io

CHUNK_ROWS = 1000


def start_query(engine, statement, chunk_rows=CHUNK_ROWS):
    """(connection, result) of ``statement`` on a streaming cursor. Raises on failure."""
    connection = engine.connect()
    try:
        if engine.dialect.name == "postgresql":
            # A cursor is planned for its first 10 % of rows by default, which
            # favours walking a sort index and filtering (seconds for a rare
            # substring at a million rows); a CSV reads every row.
            connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
        result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(statement)
    except Exception:
        connection.close()
        raise
    return connection, result


class CsvStream:
    """A WSGI body: the header, then ``cells(row)`` for each row, in chunks.

    A class rather than a generator so that ``close()`` (called by the WSGI
    server even when the client leaves before the first chunk) always releases
    the cursor and the connection.
    """

    def __init__(self, connection, result, header, cells, chunk_rows=CHUNK_ROWS):
        self.connection = connection
        self.result = result
        self.header = header
        self.cells = cells
        self.chunk_rows = chunk_rows

    def __iter__(self):
        buffer = io.StringIO()
        writer = csv.writer(buffer)  # csv.writer defaults: comma, minimal quoting, CRLF
        writer.writerow(self.header)
        try:
            for partition in self.result.partitions(self.chunk_rows):
                writer.writerows(self.cells(row) for row in partition)
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
            tail = buffer.getvalue()
            if tail:
                yield tail.encode("utf-8")
        finally:
            self.close()

    def close(self):
        if self.connection is not None:
            try:
                self.result.close()
            finally:
                self.connection.close()
                self.connection = None
