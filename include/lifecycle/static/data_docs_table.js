/* The one bootstrap-table call Great Expectations' Data Docs make, for pages read offline: the
   columns and the rows the page embeds become a plain table (newest first when the page sorts by
   run time), each row a link where the page gives one. Filtering and searching are not offered. */
(function ($) {
  $.fn.bootstrapTable = function (options) {
    if (typeof options !== "object") return this;  // a method call (clear filters, reset search)
    var columns = options.columns || [], rows = (options.data || []).slice();
    var sortKey = options.sortName;
    columns.forEach(function (c) { if (c.field === options.sortName && c.sortName) sortKey = c.sortName; });
    if (sortKey) {
      rows.sort(function (a, b) { return a[sortKey] < b[sortKey] ? -1 : a[sortKey] > b[sortKey] ? 1 : 0; });
      if (options.sortOrder === "desc") rows.reverse();
    }
    var attributes = window[options.rowAttributes], style = window[options.rowStyle];
    return this.each(function () {
      var table = $(this).addClass("table table-sm table-hover").empty();
      var head = $("<tr>");
      columns.forEach(function (c) { head.append($("<th>").text(c.title || c.field)); });
      table.append($("<thead>").append(head));
      var body = $("<tbody>");
      rows.forEach(function (row, i) {
        var tr = $("<tr>");
        columns.forEach(function (c) { tr.append($("<td>").html(row[c.field] == null ? "" : row[c.field])); });
        if (typeof attributes === "function") tr.attr(attributes(row, i) || {});
        if (typeof style === "function") tr.addClass((style(row, i) || {}).classes || "");
        tr.on("click", function () { table.trigger("click-row.bs.table", [row, tr]); });
        body.append(tr);
      });
      table.append(body);
    });
  };
})(jQuery);
