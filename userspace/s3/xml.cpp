// SPDX-License-Identifier: Apache-2.0
#include "s3/xml.h"

#include <expat.h>

#include <charconv>
#include <functional>
#include <memory>

namespace aurum::s3 {
namespace {

// Calls `on_end(path, text)` for every element as it closes; `path` is the '/'-joined local
// names from the root ("ListBucketResult/Contents/Size"). Namespaces are stripped: S3 puts
// its documents in http://s3.amazonaws.com/doc/2006-03-01/, some compatible stores do not.
class PathParser {
 public:
  using Handler = std::function<void(const std::string& path, const std::string& text)>;

  explicit PathParser(Handler on_end) : on_end_(std::move(on_end)) {}

  // Returns the root element's local name; throws XmlError on malformed input.
  std::string parse(std::string_view xml) {
    std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> p(XML_ParserCreateNS(nullptr, '|'),
                                                                   &XML_ParserFree);
    if (!p) throw XmlError("expat: out of memory");
    parser_ = p.get();
    XML_SetUserData(p.get(), this);
    XML_SetElementHandler(p.get(), &PathParser::start, &PathParser::end);
    XML_SetCharacterDataHandler(p.get(), &PathParser::chars);
    if (XML_Parse(p.get(), xml.data(), static_cast<int>(xml.size()), XML_TRUE) != XML_STATUS_OK) {
      if (error_) std::rethrow_exception(error_);
      throw XmlError(std::string("malformed XML at line ") +
                     std::to_string(XML_GetCurrentLineNumber(p.get())) + ": " +
                     XML_ErrorString(XML_GetErrorCode(p.get())));
    }
    return root_;
  }

 private:
  static std::string local_name(const XML_Char* name) {
    std::string_view n(name);
    auto bar = n.rfind('|');
    return std::string(bar == std::string_view::npos ? n : n.substr(bar + 1));
  }
  static void start(void* self_v, const XML_Char* name, const XML_Char**) {
    auto* self = static_cast<PathParser*>(self_v);
    std::string local = local_name(name);
    if (self->path_.empty()) self->root_ = local;
    self->lengths_.push_back(self->path_.size());
    if (!self->path_.empty()) self->path_ += '/';
    self->path_ += local;
    self->text_.clear();
  }
  static void end(void* self_v, const XML_Char*) {
    auto* self = static_cast<PathParser*>(self_v);
    try {
      self->on_end_(self->path_, self->text_);
    } catch (...) {
      // Exceptions must not unwind through expat's C frames: stop, rethrow after XML_Parse.
      self->error_ = std::current_exception();
      XML_StopParser(self->parser_, XML_FALSE);
      return;
    }
    self->path_.resize(self->lengths_.back());
    self->lengths_.pop_back();
    self->text_.clear();
  }
  static void chars(void* self_v, const XML_Char* s, int len) {
    static_cast<PathParser*>(self_v)->text_.append(s, static_cast<size_t>(len));
  }

  Handler on_end_;
  XML_Parser parser_ = nullptr;
  std::string path_;
  std::vector<size_t> lengths_;
  std::string text_;
  std::string root_;
  std::exception_ptr error_;
};

std::string run(PathParser& parser, std::string_view xml) { return parser.parse(xml); }

std::uint64_t to_u64(const std::string& text, const char* what) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
    throw XmlError(std::string(what) + " is not an unsigned integer: '" + text + "'");
  return v;
}

}  // namespace

ListObjectsPage parse_list_objects_v2(std::string_view xml) {
  ListObjectsPage page;
  PathParser parser([&](const std::string& path, const std::string& text) {
    if (path == "ListBucketResult/Contents/Size") {
      page.bytes += to_u64(text, "Contents/Size");
    } else if (path == "ListBucketResult/Contents") {
      ++page.objects;
    } else if (path == "ListBucketResult/IsTruncated") {
      page.truncated = text == "true";
    } else if (path == "ListBucketResult/NextContinuationToken") {
      page.next_continuation_token = text;
    }
  });
  std::string root = run(parser, xml);
  if (root != "ListBucketResult") throw XmlError("expected ListBucketResult, got " + root);
  if (page.truncated && page.next_continuation_token.empty())
    throw XmlError("IsTruncated without NextContinuationToken");
  return page;
}

std::vector<std::string> parse_list_buckets(std::string_view xml) {
  std::vector<std::string> names;
  PathParser parser([&](const std::string& path, const std::string& text) {
    if (path == "ListAllMyBucketsResult/Buckets/Bucket/Name") names.push_back(text);
  });
  std::string root = run(parser, xml);
  if (root != "ListAllMyBucketsResult") throw XmlError("expected ListAllMyBucketsResult, got " + root);
  return names;
}

std::optional<ErrorDocument> parse_error(std::string_view xml) {
  ErrorDocument doc;
  PathParser parser([&](const std::string& path, const std::string& text) {
    if (path == "Error/Code") doc.code = text;
    else if (path == "Error/Message") doc.message = text;
  });
  try {
    if (run(parser, xml) != "Error") return std::nullopt;
  } catch (const XmlError&) {
    return std::nullopt;
  }
  return doc;
}

}  // namespace aurum::s3
