#!/usr/bin/perl
# Writes the package's machine-readable copyright file (DEP-5): the project's
# own paragraphs from packaging/debian/copyright, plus one Files paragraph per
# Rust crate statically linked into pam_totp.so and totp-enroll.
#
#   bundled-copyright.pl COPYRIGHT CRATES METADATA > copyright
#
# COPYRIGHT  packaging/debian/copyright (header, Files: *, License paragraphs)
# CRATES     `cargo tree -e normal,no-proc-macro --prefix none --format '{p}'`
#            output: "name vX.Y.Z", "name vX.Y.Z (/path)" for workspace
#            members, a trailing " (*)" for repeats
# METADATA   `cargo metadata --format-version 1` output (license, authors and
#            manifest path of every package)
#
# A crate whose licence is a choice that includes Apache-2.0 is used under
# Apache-2.0, whose text Debian ships in /usr/share/common-licenses. Any other
# crate (MIT only, BSD only, or an "and") gets the text of its own licence
# files, copyright lines included, since those licences ask binaries to carry
# them. Perl and JSON::PP are used because dpkg-dev needs Perl anyway.
use strict;
use warnings;
use JSON::PP;

@ARGV == 3 or die "usage: $0 COPYRIGHT CRATES METADATA\n";
my ($copyright_path, $crates_path, $metadata_path) = @ARGV;

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or die "$0: cannot read $path: $!\n";
    local $/;
    my $text = <$fh>;
    close($fh);
    return $text;
}

# --- the crates that are linked in --------------------------------------
my %linked;    # "name version" => 1, registry crates only
for my $line (split /\n/, slurp($crates_path)) {
    $line =~ s/\s+\(\*\)\s*$//;
    next if $line =~ /^\s*$/;
    my ($name, $version, $rest) = $line =~ /^(\S+) v(\S+)(.*)$/
        or die "$0: unexpected cargo tree line: $line\n";
    next if $rest =~ /\(\//;    # a workspace member: covered by "Files: *"
    $linked{"$name $version"} = 1;
}

my $metadata = JSON::PP->new->utf8->decode(slurp($metadata_path));
my %package;
for my $p (@{ $metadata->{packages} }) {
    $package{"$p->{name} $p->{version}"} = $p;
}

# SPDX expression -> DEP-5 License line ("MIT OR Apache-2.0" -> "MIT or Apache-2.0").
sub dep5_license {
    my ($spdx) = @_;
    $spdx =~ s{\s*/\s*}{ OR }g;    # old crates.io style "MIT/Apache-2.0"
    $spdx =~ s/\bOR\b/or/g;
    $spdx =~ s/\bAND\b/and/g;
    $spdx =~ s/\bWITH\b/with/g;
    $spdx =~ s/\s+/ /g;
    return $spdx;
}

sub license_names {
    my ($expr) = @_;
    return grep { !/^(?:or|and|with)$/ } $expr =~ /([A-Za-z0-9][A-Za-z0-9.+-]*)/g;
}

# True when the licence is a plain choice among licences, Apache-2.0 being one.
sub apache_choice {
    my ($expr) = @_;
    return 0 if $expr =~ /\b(?:and|with)\b|[()]/;
    return scalar grep { $_ eq 'Apache-2.0' } split /\s+or\s+/, $expr;
}

# DEP-5 continuation lines: one leading space, "." for an empty line.
sub indent {
    my ($text) = @_;
    $text =~ s/\r//g;
    $text =~ s/\s+$//;
    return join("\n", map { /^\s*$/ ? ' .' : " $_" } split /\n/, $text);
}

sub copyright_lines {
    my ($p, $dir) = @_;
    my @lines;
    for my $file (sort glob("$dir/LICEN[CS]E* $dir/COPYING* $dir/COPYRIGHT*")) {
        next unless -f $file;
        for (split /\n/, slurp($file)) {
            # "Copyright (c) 2015 Someone", not "copyright notice" prose nor
            # the Apache template "Copyright [yyyy] [name of copyright owner]".
            next unless /^\s*Copyright\s+(?:\(c\)|©|\d)/i;
            next if /\[yyyy\]/;
            s/^\s*Copyright\s+(?:\(c\)\s*|©\s*)?//i;
            s/\s+$//;
            push @lines, $_;
        }
    }
    if (!@lines) {
        @lines = map { s/\s*<[^>]*>//r } @{ $p->{authors} || [] };
    }
    @lines = ("the $p->{name} developers") if !@lines;
    my %seen;
    return grep { !$seen{$_}++ } @lines;
}

sub license_text {
    my ($dir) = @_;
    my @texts;
    for my $file (sort glob("$dir/LICEN[CS]E* $dir/COPYING*")) {
        next if !-f $file || $file =~ /APACHE/i;
        push @texts, slurp($file);
    }
    return join("\n\n", @texts);
}

# --- the project's own paragraphs ----------------------------------------
my @own = split /\n\s*\n/, slurp($copyright_path);
s/^\s+|\s+$//g for @own;
my @own_files = grep { /^Files:/m } @own;
my @own_licenses = grep { /^License:/ && !/^Files:/m } @own;
my %defined = map { /^License:\s*(\S+)/ ? ($1 => 1) : () } @own_licenses;

my (@crate_paragraphs, %used);
for (@own_files) {
    my ($expr) = /^License:\s*(.+)$/m or next;
    $used{$_} = 1 for license_names($expr);
}
for my $key (sort keys %linked) {
    my $p = $package{$key} or die "$0: $key is not in cargo metadata\n";
    my ($dir) = $p->{manifest_path} =~ m{^(.*)/[^/]+$};
    my $name = $p->{name};
    my $spdx = $p->{license}
        or die "$0: $key declares no SPDX licence (license-file only); "
        . "add its terms to packaging/debian/copyright by hand\n";
    my $expr = dep5_license($spdx);
    my @copyright = copyright_lines($p, $dir);
    my $paragraph = "Files: rust-crates/$name-$p->{version}/*\n"
        . "Copyright: " . join("\n ", @copyright) . "\n"
        . "License: $expr";
    if (apache_choice($expr)) {
        $used{$_} = 1 for license_names($expr);
        # Apache-2.0 section 4(d): a NOTICE file travels with the work.
        my @notices = grep { -f } sort glob("$dir/NOTICE*");
        if (@notices) {
            $paragraph .= "\nComment: NOTICE:\n" . indent(join("\n\n", map { slurp($_) } @notices));
        }
    } else {
        my $text = license_text($dir);
        die "$0: $key ($expr) ships no licence file to reproduce\n" if $text eq '';
        $paragraph .= "\n" . indent($text);
    }
    push @crate_paragraphs, $paragraph;
}

# Names used only as alternatives to Apache-2.0 still need a paragraph.
my @alternatives;
for my $name (sort keys %used) {
    next if $defined{$name};
    push @alternatives, "License: $name\n"
        . " Offered by some of the crates above as an alternative to Apache-2.0.\n"
        . " This package uses those crates under Apache-2.0, so the text of\n"
        . " $name is not reproduced here.";
}

my @header = grep { !/^Files:/m && !/^License:/ } @own;
binmode(STDOUT, ':raw');
print join("\n\n", @header, @own_files, @crate_paragraphs, @own_licenses, @alternatives), "\n";
