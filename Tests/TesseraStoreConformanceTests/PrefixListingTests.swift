// Prefix listing: `items(withPrefix:)` returns the items whose path starts with the prefix's
// bytes, ordered by the bytes of their paths (UTF-8, which is code point order), never by a
// locale's collation. Callers list a folder with its `folderPrefix` ("/a/"), so that a prefix
// matches whole segments; the characters that SQL LIKE treats specially match only themselves.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Prefix listing")
    struct PrefixListing {
        /// Paths chosen so that byte order, locale order and case-insensitive order all differ.
        static let paths = ["/a", "/a b", "/a-b", "/a.b", "/a/b", "/a/b/c", "/a0", "/aB", "/ab", "/A", "/Z", "/z",
                            "/é", "/ａ", "/😀", "/a/é", "/a/z", "/a/😀"]

        static func byteOrder(_ paths: [String]) -> [String] {
            paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }

        func fill(_ store: any Store, _ paths: [String] = PrefixListing.paths) async throws {
            for path in paths { _ = try await store.createItem(path) }
        }

        func listed(_ store: any Store, _ prefix: String, limit: Int = 1000) async throws -> [String] {
            try await store.items(withPrefix: prefix, limit: limit).map(\.path.value)
        }

        @Test("the root prefix lists every item in byte order of the paths", arguments: Engines.all)
        func byteOrder(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store)
                let expected = Self.byteOrder(Self.paths)
                #expect(expected.first == "/A")
                #expect(expected.last == "/😀")
                #expect(try await listed(s.store, "/") == expected)
            }
        }

        @Test("a folder prefix matches whole segments: /a/ lists /a/… but not /a, /a-b, /ab", arguments: Engines.all)
        func folderBoundaries(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store)
                #expect(try await listed(s.store, "/a/") == ["/a/b", "/a/b/c", "/a/z", "/a/é", "/a/😀"])
                #expect(try await listed(s.store, "/a/b/") == ["/a/b/c"])
                #expect(try await listed(s.store, "/a/b/c/").isEmpty)
                #expect(try await listed(s.store, "/nothing/").isEmpty)
            }
        }

        @Test("a prefix that is not a folder matches by bytes, case and accents included", arguments: Engines.all)
        func rawPrefix(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store)
                #expect(try await listed(s.store, "/a")
                        == Self.byteOrder(Self.paths.filter { $0.utf8.starts(with: "/a".utf8) }))
                #expect(try await listed(s.store, "/A") == ["/A"])
                #expect(try await listed(s.store, "/e").isEmpty)
                #expect(try await listed(s.store, "/é") == ["/é"])
                #expect(try await listed(s.store, "/a/b") == ["/a/b", "/a/b/c"])
            }
        }

        @Test("the characters % and _ in a prefix match only themselves", arguments: Engines.all)
        func likeWildcards(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store, ["/p_q/x", "/pxq/x", "/p%25q/y", "/pA25q/y", "/p%25/z", "/p/z"])
                #expect(try await listed(s.store, "/p_q/") == ["/p_q/x"])
                #expect(try await listed(s.store, "/p%25q/") == ["/p%25q/y"])
                #expect(try await listed(s.store, "/p%") == ["/p%25/z", "/p%25q/y"])
                #expect(try await listed(s.store, "/p_") == ["/p_q/x"])
            }
        }

        @Test("paths outside the Basic Multilingual Plane are listed under their folder", arguments: Engines.all)
        func astralPaths(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store, ["/😀/a", "/😀/b", "/😀x/c", "/a/x\u{E01EF}", "/a/y"])
                #expect(try await listed(s.store, "/😀/") == ["/😀/a", "/😀/b"])
                #expect(try await listed(s.store, "/a/") == ["/a/x\u{E01EF}", "/a/y"])
            }
        }

        @Test("the limit keeps the first items in order", arguments: Engines.all)
        func limit(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await fill(s.store)
                let all = Self.byteOrder(Self.paths)
                #expect(try await listed(s.store, "/", limit: 5) == Array(all.prefix(5)))
                #expect(try await listed(s.store, "/a/", limit: 2) == ["/a/b", "/a/b/c"])
            }
        }

        @Test("a listing shows each item's current state", arguments: Engines.all)
        func listingIsCurrent(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/l/one")
                try await s.store.appendVersions(item, through: 3)
                _ = try await s.store.createItem("/l/two")
                #expect(try await s.store.items(withPrefix: "/l/", limit: 10).map(\.lastVersion) == [3, 1])
                #expect(try await s.store.deleteItem(id: item.id))
                #expect(try await listed(s.store, "/l/") == ["/l/two"])
            }
        }
    }
}
